"""The LM study's token engine (issue 30): delay vs flatten LMs that converge on CPU, on tokens precomputed once
per codec."""
