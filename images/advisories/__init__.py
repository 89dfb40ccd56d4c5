"""OSV advisory imports: parsing and validating records, reading files, directories and zip
archives from allowed roots, uploads or internal mirror URLs, severity from CVSS."""
