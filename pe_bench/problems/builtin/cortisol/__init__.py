"""The built-in cortisol problem (its PEtab files, and make_data.py that wrote its data)."""
