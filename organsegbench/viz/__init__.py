"""Static figures (matplotlib, Agg backend): overlay montages for reports and the demo."""
