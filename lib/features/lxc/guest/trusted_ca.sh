# Trust exactly one Phoenix root: earlier phoenix_*.crt files would stay
# trusted otherwise. Arguments: <file name under /usr/local/share/ca-certificates to keep>
find /usr/local/share/ca-certificates -maxdepth 1 -name 'phoenix_*.crt' ! -name "$1" -delete
update-ca-certificates
