"""The problems shipped with pe_bench, one folder each (PEtab files)."""
