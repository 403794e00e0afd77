"""softlabelseg.evaluation"""
