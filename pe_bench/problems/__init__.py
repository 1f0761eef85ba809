"""Problems: the Problem type, its loaders (PEtab, SBML, BioModels, BioPreDyn) and the registry."""
