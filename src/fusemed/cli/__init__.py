"""The `fusemed` command: one entry point whose verbs are the pipeline's stages."""
