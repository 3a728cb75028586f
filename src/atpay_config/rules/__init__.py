"""Findings, the policy engine, waivers and the rules that need code."""
