package auth

import (
	"cmp"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"ticketing/app/web"
)

// Routes registers the JSON API (the seed's /api/users/...) and the pages.
func Routes(api, site *echo.Group, s *Store, sessions *web.Sessions, r *web.Renderer, l *Limiter) {
	api.POST("/users/signup", handleAPISignUp(s, sessions, l))
	api.POST("/users/signin", handleAPISignIn(s, sessions, l))
	api.POST("/users/signout", handleAPISignOut(sessions))
	api.GET("/users/currentuser", handleAPICurrentUser())

	r.OnExpired("/auth/signup", showSignUp(r))
	r.OnExpired("/auth/signin", showSignIn(r))
	site.GET("/auth/signup", handleSignUpPage(r))
	site.POST("/auth/signup", handleSignUp(s, sessions, r, l))
	site.GET("/auth/signin", handleSignInPage(r))
	site.POST("/auth/signin", handleSignIn(s, sessions, r, l))
	site.GET("/auth/signout", handleSignOutPage(r))
	r.OnExpired("/auth/forgot", showForgot(r))
	r.OnExpired("/auth/reset", showReset(r))
	site.GET("/auth/forgot", handleForgotPage(r))
	site.POST("/auth/forgot", handleForgot(s, r, l))
	site.GET("/auth/reset", handleResetPage(r))
	site.POST("/auth/reset", handleReset(s, sessions, r))
	r.OnExpired("/account", showAccount(s, r), web.RequireUser)
	site.GET("/account", handleAccount(s, r), web.RequireUser)
	site.POST("/account", handleRename(s, sessions, r), web.RequireUser)
	site.POST("/auth/signout", handleSignOut(sessions))
}

type credentials struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	DisplayName string `json:"displayName"` // sign-up only, optional
}

// signUp checks the limiter, then signs up.
func signUp(c echo.Context, s *Store, l *Limiter, in credentials) (User, error) {
	if err := l.SignUp(c.RealIP()); err != nil {
		return User{}, err
	}
	return s.SignUp(c.Request().Context(), in.Email, in.Password, in.DisplayName)
}

func handleAPISignUp(s *Store, sessions *web.Sessions, l *Limiter) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in credentials
		if err := web.Bind(c, &in); err != nil {
			return err
		}
		u, err := signUp(c, s, l, in)
		if err != nil {
			return err
		}
		if err := sessions.SignIn(c, web.User{ID: u.ID, Email: u.Email}); err != nil {
			return err
		}
		return web.JSON(c, http.StatusCreated, u)
	}
}

// signIn checks the limiter, then the credentials; a failure counts
// against the account.
func signIn(c echo.Context, s *Store, l *Limiter, email, password string) (User, error) {
	done, err := l.SignIn(email, c.RealIP())
	if err != nil {
		return User{}, err
	}
	u, err := s.SignIn(c.Request().Context(), email, password)
	done(err == nil)
	return u, err
}

func handleAPISignIn(s *Store, sessions *web.Sessions, l *Limiter) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in credentials
		if err := web.Bind(c, &in); err != nil {
			return err
		}
		u, err := signIn(c, s, l, in.Email, in.Password)
		if err != nil {
			return err
		}
		if err := sessions.SignIn(c, web.User{ID: u.ID, Email: u.Email}); err != nil {
			return err
		}
		return web.JSON(c, http.StatusOK, u)
	}
}

func handleAPISignOut(sessions *web.Sessions) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := sessions.SignOut(c); err != nil {
			return err
		}
		return web.JSON(c, http.StatusOK, struct{}{})
	}
}

func handleAPICurrentUser() echo.HandlerFunc {
	return func(c echo.Context) error {
		return web.JSON(c, http.StatusOK, map[string]*web.User{"currentUser": web.CurrentUser(c)})
	}
}

// authPage is what the sign-up and sign-in pages show.
type authPage struct {
	Form web.Form
	Next string
}

// safeNext keeps a post-sign-in redirect on this site: a path of ours, or
// "/". Browsers drop tabs and newlines from a Location and read a
// backslash as a slash, so "/\t/evil.example" and "/\\evil.example" lead
// to another host; anything with a control character, a backslash, a
// leading "//", a scheme, a host or user info is refused.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') || !utf8.ValidString(next) {
		return "/"
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f || !unicode.IsPrint(r) && r != ' ' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return next
}

func handleSignUpPage(r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		if web.CurrentUser(c) != nil {
			return web.Redirect(c, "/")
		}
		return r.Render(c, http.StatusOK, web.View{Page: "auth/signup", Title: "Sign up", Data: authPage{Next: c.QueryParam("next")}})
	}
}

// showSignUp renders the sign-up form again, refused or expired; the
// password is never sent back.
func showSignUp(r *web.Renderer) web.Reshow {
	return func(c echo.Context, form web.Form) error {
		form.Values["password"] = ""
		return r.Render(c, form.Status, web.View{Page: "auth/signup", Fragment: "signup-form", Title: "Sign up", Data: authPage{Form: form, Next: form.Value("next")}})
	}
}

func handleSignUp(s *Store, sessions *web.Sessions, r *web.Renderer, l *Limiter) echo.HandlerFunc {
	show := showSignUp(r)
	return func(c echo.Context) error {
		form := web.FormValues(c, "displayName", "email", "password", "next")
		next := form.Value("next")
		var u User
		err := requireName(form.Value("email"), form.Value("password"), form.Value("displayName"))
		if err == nil {
			u, err = signUp(c, s, l, credentials{Email: form.Value("email"), Password: form.Value("password"), DisplayName: form.Value("displayName")})
		}
		if form.Invalid(err) {
			return show(c, form)
		}
		if err != nil {
			return err
		}
		if err := sessions.SignIn(c, web.User{ID: u.ID, Email: u.Email}); err != nil {
			return err
		}
		if err := sessions.Flash(c, "Welcome, "+greeting(u)+"!"); err != nil {
			return err
		}
		return web.Redirect(c, safeNext(next))
	}
}

func handleSignInPage(r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		if web.CurrentUser(c) != nil {
			return web.Redirect(c, "/")
		}
		return r.Render(c, http.StatusOK, web.View{Page: "auth/signin", Title: "Sign in", Data: authPage{Next: c.QueryParam("next")}})
	}
}

// showSignIn renders the sign-in form again, refused or expired.
func showSignIn(r *web.Renderer) web.Reshow {
	return func(c echo.Context, form web.Form) error {
		form.Values["password"] = ""
		return r.Render(c, form.Status, web.View{Page: "auth/signin", Fragment: "signin-form", Title: "Sign in", Data: authPage{Form: form, Next: form.Value("next")}})
	}
}

func handleSignIn(s *Store, sessions *web.Sessions, r *web.Renderer, l *Limiter) echo.HandlerFunc {
	show := showSignIn(r)
	return func(c echo.Context) error {
		form := web.FormValues(c, "email", "password", "next")
		next := form.Value("next")
		u, err := signIn(c, s, l, form.Value("email"), form.Value("password"))
		if form.Invalid(err) {
			return show(c, form)
		}
		if err != nil {
			return err
		}
		if err := sessions.SignIn(c, web.User{ID: u.ID, Email: u.Email}); err != nil {
			return err
		}
		if err := sessions.Flash(c, "Welcome back, "+greeting(u)+"."); err != nil {
			return err
		}
		return web.Redirect(c, safeNext(next))
	}
}

func handleSignOutPage(r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		return r.Render(c, http.StatusOK, web.View{Page: "auth/signout", Title: "Sign out"})
	}
}

func handleSignOut(sessions *web.Sessions) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := sessions.SignOut(c); err != nil {
			return err
		}
		return web.Redirect(c, "/")
	}
}

// accountPage is the signed-in user's account: the name buyers see.
type accountPage struct {
	User User
	Form web.Form
}

// showAccount renders the account page with form: as the user left it,
// or refused or expired.
func showAccount(s *Store, r *web.Renderer) web.Reshow {
	return func(c echo.Context, form web.Form) error {
		u, err := s.Get(c.Request().Context(), web.CurrentUser(c).ID)
		if err != nil {
			return err
		}
		if form.Values == nil {
			form.Values = map[string]string{"displayName": u.DisplayName}
		}
		return r.Render(c, cmp.Or(form.Status, http.StatusOK), web.View{Page: "auth/account", Fragment: "account-form", Title: "Your account",
			Data: accountPage{User: u, Form: form}})
	}
}

func handleAccount(s *Store, r *web.Renderer) echo.HandlerFunc {
	show := showAccount(s, r)
	return func(c echo.Context) error { return show(c, web.Form{}) }
}

func handleRename(s *Store, sessions *web.Sessions, r *web.Renderer) echo.HandlerFunc {
	show := showAccount(s, r)
	return func(c echo.Context) error {
		form := web.FormValues(c, "displayName")
		u, err := s.Rename(c.Request().Context(), web.CurrentUser(c).ID, form.Value("displayName"))
		if form.Invalid(err) {
			return show(c, form)
		}
		if err != nil {
			return err
		}
		if err := sessions.Flash(c, "Saved: buyers see your listings as sold by "+u.DisplayName+"."); err != nil {
			return err
		}
		return web.Redirect(c, "/account")
	}
}

// forgotPage asks for the address to send a reset link to; Sent says it
// was sent (or that there is no such account: the page does not say).
type forgotPage struct {
	Form web.Form
	Sent bool
}

func showForgot(r *web.Renderer) web.Reshow {
	return func(c echo.Context, form web.Form) error {
		return r.Render(c, cmp.Or(form.Status, http.StatusOK), web.View{Page: "auth/forgot", Fragment: "forgot-form", Title: "Forgot your password",
			Data: forgotPage{Form: form}})
	}
}

func handleForgotPage(r *web.Renderer) echo.HandlerFunc {
	show := showForgot(r)
	return func(c echo.Context) error {
		return show(c, web.Form{Values: map[string]string{"email": c.QueryParam("email")}})
	}
}

// handleForgot records a reset link and answers the same whether or not
// the account exists; requests are limited per address and per client.
func handleForgot(s *Store, r *web.Renderer, l *Limiter) echo.HandlerFunc {
	show := showForgot(r)
	return func(c echo.Context) error {
		form := web.FormValues(c, "email")
		err := l.Reset(form.Value("email"), c.RealIP())
		if err == nil {
			err = s.RequestReset(c.Request().Context(), form.Value("email"))
		}
		if form.Invalid(err) {
			return show(c, form)
		}
		if err != nil {
			return err
		}
		return r.Render(c, http.StatusOK, web.View{Page: "auth/forgot", Title: "Check your email", Data: forgotPage{Form: form, Sent: true}})
	}
}

// resetPage sets a new password with a reset link's token.
type resetPage struct {
	Form web.Form
}

func showReset(r *web.Renderer) web.Reshow {
	return func(c echo.Context, form web.Form) error {
		form.Values["password"] = ""
		return r.Render(c, cmp.Or(form.Status, http.StatusOK), web.View{Page: "auth/reset", Fragment: "reset-form", Title: "Choose a new password",
			Data: resetPage{Form: form}})
	}
}

func handleResetPage(r *web.Renderer) echo.HandlerFunc {
	show := showReset(r)
	return func(c echo.Context) error {
		return show(c, web.Form{Values: map[string]string{"token": c.QueryParam("token")}})
	}
}

// handleReset sets the new password, ends every other session of the
// account and signs this browser in.
func handleReset(s *Store, sessions *web.Sessions, r *web.Renderer) echo.HandlerFunc {
	show := showReset(r)
	return func(c echo.Context) error {
		form := web.FormValues(c, "token", "password")
		u, err := s.ResetPassword(c.Request().Context(), form.Value("token"), form.Value("password"))
		if form.Invalid(err) {
			return show(c, form)
		}
		if err != nil {
			return err
		}
		if err := sessions.SignIn(c, web.User{ID: u.ID, Email: u.Email}); err != nil {
			return err
		}
		if err := sessions.Flash(c, "Your password was changed, and every other session of your account was signed out."); err != nil {
			return err
		}
		return web.Redirect(c, "/")
	}
}
