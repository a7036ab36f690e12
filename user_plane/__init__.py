"""EdgeCUPS user plane: the UPF agent and its dataplane building blocks."""
