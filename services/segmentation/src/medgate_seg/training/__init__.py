"""Training side of the segmentation service (torch allowed here, never in serving code):
the BARL experiment grid, its result tables, the committed model's export and the speed check."""
