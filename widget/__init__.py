"""The embeddable banner: the web component, the iframe embed and CRM-side snippets."""
