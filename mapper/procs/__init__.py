"""Custom Lava Processes (process.py) and their ProcessModels (models.py).

Lava's model discovery imports every module of this package and re-executes
every file in its directory, so the package holds nothing else and its modules
have no side effects beyond defining classes.
"""
