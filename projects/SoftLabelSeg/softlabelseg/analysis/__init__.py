"""Analyses behind the project's claims: label retention after down-sampling, the ablation grid."""
