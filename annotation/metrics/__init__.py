"""Pure statistics on numpy arrays: agreement, proportions, bootstrap, Bradley-Terry.

Nothing here touches the database; :mod:`annotation.insight` turns judgments into arrays and
calls these functions. Point estimates come from well-kept libraries (``krippendorff``,
``statsmodels``, ``scipy``); the bootstrap uses weighted sufficient statistics so that a
resample costs one matrix product instead of a library call (tests check both agree).
"""
