"""SBML -> symbolic model (sympy) -> JAX functions."""
