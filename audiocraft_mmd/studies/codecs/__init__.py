"""The codec study: the paper's codec-level claims at CPU scale (`make reproduce`)."""
