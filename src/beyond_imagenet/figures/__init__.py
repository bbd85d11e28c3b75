"""The paper's figures drawn from arrays and result data (Agg backend, atomic PNG writes): Figs. 2-8."""
