"""The build's stages, one module each, in the order `pybuild.pipeline` runs them."""
