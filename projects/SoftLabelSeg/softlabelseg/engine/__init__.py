"""softlabelseg.engine"""
