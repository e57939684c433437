"""Numba settings shared by every kernel, kept in one place."""

NJIT_OPTIONS = {"cache": True, "nogil": True, "fastmath": False}
