package ctl

import (
	"errors"

	"github.com/spf13/cobra"
)

func newStatusCommand(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "not built yet",
		RunE: func(*cobra.Command, []string) error {
			_ = o
			return errors.New("status: not built yet")
		},
	}
}
