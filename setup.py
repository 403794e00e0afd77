"""Maps the four source roots to their import names; everything else lives in setup.cfg."""
from setuptools import find_packages, setup

PACKAGE_ROOTS = {
    "softlabel_ops": "softlabel_ops",
    "softlabelseg": "projects/SoftLabelSeg/softlabelseg",
    "softlabelseg_export": "export",
    "softlabelseg_research": "research/softlabelseg_research",
}

packages = []
for name, path in PACKAGE_ROOTS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(path)]

setup(packages=packages, package_dir=PACKAGE_ROOTS)
