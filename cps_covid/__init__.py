"""cps-covid-etl: keeps the CPS COVID dashboard's published data current."""
