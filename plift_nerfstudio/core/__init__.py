"""What every stage relies on: errors for bad input, staging and owned output folders, loading trained runs."""
