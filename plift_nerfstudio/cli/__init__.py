"""Thin command-line front ends (tyro) of the pipeline's stages."""
