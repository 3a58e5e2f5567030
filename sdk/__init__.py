"""hopmem"""
