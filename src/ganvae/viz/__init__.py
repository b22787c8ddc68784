"""Pictures: grids, GIFs, plots, the HTML report."""
