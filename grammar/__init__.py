"""The Lark grammar of the eligib protocol language, installed as `eligib.grammar`."""
