"""The dashboard: views, forms, stream fragment renderers and URLs."""
