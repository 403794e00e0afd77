"""softlabelseg.modeling"""
