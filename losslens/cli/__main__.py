"""``python -m losslens.cli`` (what ``torchrun -m losslens.cli train-reference ...`` runs)."""

from losslens.cli import main

main()
