"""softlabelseg.config"""
