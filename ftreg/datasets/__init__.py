"""From what the user named to encoded examples: sources find the file, formats read it, encoding tokenizes."""
