"""What the studies share: paired statistics (`statistics`), the Dora runner (`runner`), the command line and
result caches (`harness`), and the codec study's setting names, which the LM study reads (`settings`)."""
