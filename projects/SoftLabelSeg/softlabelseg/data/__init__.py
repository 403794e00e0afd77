"""softlabelseg.data"""
