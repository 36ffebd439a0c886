"""The analysis stages of one slide, each a plain typed object in and out: tissue, stain, superpixels,
texture, epithelium, membrane, nuclei, cells, and the morphology they share."""
