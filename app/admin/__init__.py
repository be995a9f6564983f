"""The admin API for agency systems (role ``agency``): the writes that are the truth."""
