"""Model catalogue, preprocessing, weights and the Backbone interface over timm and OpenCLIP (PROTOCOL §1)."""
