"""Running a layer's interpreter as Lambda would: at /opt, with Lambda's environment, under qemu."""
