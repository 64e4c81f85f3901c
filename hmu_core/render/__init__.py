"""Quick-look renderings of motions (stick figures); imports nothing heavy."""
