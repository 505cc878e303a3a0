"""Where a layer's Python comes from: python-build-standalone, or Debian's packages."""
