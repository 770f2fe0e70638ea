package auth_test

import (
	"errors"
	"fmt"

	"github.com/ledgerd/ledgerd/internal/auth"
)

func ExampleAuthorize() {
	dir := auth.MapDirectory{"6696d1bc-6012-47da-8556-ab4c747999c9": {auth.ActionRead, auth.ActionReceiptsRead}}
	caller := auth.Principal{ID: "6696d1bc-6012-47da-8556-ab4c747999c9", Kind: auth.KindJWT}

	fmt.Println(auth.Authorize(dir, caller, auth.ActionRead))
	err := auth.Authorize(dir, caller, auth.ActionAppend)
	fmt.Println(errors.Is(err, auth.ErrNotAllowed))
	// Output:
	// <nil>
	// true
}

func ExampleNormalizeUserID() {
	fmt.Println(auth.NormalizeUserID("5f:23:3d:26:e2:28:88:9c:06:e0:88:21:fa:c7:b2:9a:f8:81:30:6b:f9:15:41:f2:34:05:05:44:4c:ad:5a:b5"))
	fmt.Println(auth.NormalizeUserID("6696d1bc-6012-47da-8556-ab4c747999c9"))
	// Output:
	// 5F:23:3D:26:E2:28:88:9C:06:E0:88:21:FA:C7:B2:9A:F8:81:30:6B:F9:15:41:F2:34:05:05:44:4C:AD:5A:B5
	// 6696d1bc-6012-47da-8556-ab4c747999c9
}

func ExampleParseRole() {
	r, err := auth.ParseRole("Contributor")
	fmt.Println(r, err)
	_, err = auth.ParseRole("contributor")
	fmt.Println(err)
	// Output:
	// Contributor <nil>
	// auth: unknown role "contributor": want Reader, Contributor or Administrator
}
