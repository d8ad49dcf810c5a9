// A step-ca binary for Phoenix's tests, built from Debian's packaged Go
// sources (golang-github-smallstep-certificates-dev), since Debian ships no
// step-ca executable. It only wires the CA's "start" command in as the
// application's only command: `step-ca <ca.json> --password-file <file>`,
// the same command line Phoenix's run-step-ca uses. Built by build.sh.
package main

import (
	"fmt"
	"os"

	"github.com/smallstep/certificates/commands"
	"github.com/urfave/cli"
)

func main() {
	// The CA's start command runs as the only subcommand, so urfave/cli moves
	// the flags ahead of the positional ca.json for it (an app-level action
	// would stop at the first positional and refuse --password-file after it):
	// `step-ca <ca.json> --password-file <file>` works as with Smallstep's binary.
	app := cli.NewApp()
	app.Name = "step-ca"
	app.Usage = "step-ca for Phoenix's tests (Debian's certificates sources)"
	app.Version = "0.19.0-debian"
	app.HideHelp = true
	app.Commands = []cli.Command{commands.AppCommand}
	argv := append([]string{os.Args[0], commands.AppCommand.Name}, os.Args[1:]...)
	if err := app.Run(argv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
