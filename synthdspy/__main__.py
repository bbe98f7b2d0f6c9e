"""``python -m synthdspy`` runs the command line."""

from synthdspy.cli import app

app(prog_name="synthdspy")
