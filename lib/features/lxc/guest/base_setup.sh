# base_setup: the tools every Phoenix container gets, and the en_US.UTF-8 locale.
# Arguments: <locale: yes|no> [<package>...]
want_locale=$1
shift
if [ "$#" -gt 0 ]; then
  apt_get update
  apt_get install "$@"
fi
if [ "$want_locale" = yes ]; then
  # Debian-style locale.gen lists the locale commented out; Ubuntu's
  # locale-gen takes it as an argument. Uncommenting serves both.
  if [ -f /etc/locale.gen ]; then
    sed -i 's/^#[[:space:]]*\(en_US\.UTF-8[[:space:]]\+UTF-8\)/\1/' /etc/locale.gen
  fi
  locale-gen en_US.UTF-8
  update-locale LANG=en_US.UTF-8 LC_ALL=en_US.UTF-8
fi
