"""Vendored front-end libraries (ECharts 5, Apache-2.0), served locally: no CDN."""
