package auth

import (
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
	site.POST("/auth/signout", handleSignOut(sessions))
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// signUp checks the limiter, then signs up.
func signUp(c echo.Context, s *Store, l *Limiter, email, password string) (User, error) {
	if err := l.SignUp(c.RealIP()); err != nil {
		return User{}, err
	}
	return s.SignUp(c.Request().Context(), email, password)
}

func handleAPISignUp(s *Store, sessions *web.Sessions, l *Limiter) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in credentials
		if err := web.Bind(c, &in); err != nil {
			return err
		}
		u, err := signUp(c, s, l, in.Email, in.Password)
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
		form := web.FormValues(c, "email", "password", "next")
		next := form.Value("next")
		u, err := signUp(c, s, l, form.Value("email"), form.Value("password"))
		if form.Invalid(err) {
			return show(c, form)
		}
		if err != nil {
			return err
		}
		if err := sessions.SignIn(c, web.User{ID: u.ID, Email: u.Email}); err != nil {
			return err
		}
		if err := sessions.Flash(c, "Welcome, "+u.Email+"!"); err != nil {
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
		if err := sessions.Flash(c, "Welcome back, "+u.Email+"."); err != nil {
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
