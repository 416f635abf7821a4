"""gamdss"""
