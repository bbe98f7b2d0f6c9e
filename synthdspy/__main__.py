"""``python -m synthdspy`` runs the command line."""

from synthdspy.cli import main

main()
