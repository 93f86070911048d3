package auth

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"ticketing/app/web"
)

// Routes registers the JSON API (the seed's /api/users/...) and the pages.
func Routes(api, site *echo.Group, s *Store, sessions *web.Sessions, r *web.Renderer, l *Limiter) {
	api.POST("/users/signup", handleAPISignUp(s, sessions))
	api.POST("/users/signin", handleAPISignIn(s, sessions, l))
	api.POST("/users/signout", handleAPISignOut(sessions))
	api.GET("/users/currentuser", handleAPICurrentUser())

	site.GET("/auth/signup", handleSignUpPage(r))
	site.POST("/auth/signup", handleSignUp(s, sessions, r))
	site.GET("/auth/signin", handleSignInPage(r))
	site.POST("/auth/signin", handleSignIn(s, sessions, r, l))
	site.GET("/auth/signout", handleSignOutPage(r))
	site.POST("/auth/signout", handleSignOut(sessions))
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func handleAPISignUp(s *Store, sessions *web.Sessions) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in credentials
		if err := web.Bind(c, &in); err != nil {
			return err
		}
		u, err := s.SignUp(c.Request().Context(), in.Email, in.Password)
		if err != nil {
			return err
		}
		if err := sessions.SignIn(c, web.User{ID: u.ID, Email: u.Email}); err != nil {
			return err
		}
		return web.JSON(c, http.StatusCreated, u)
	}
}

// signIn checks the limiter, then the credentials, and counts a failure.
func signIn(c echo.Context, s *Store, l *Limiter, email, password string) (User, error) {
	ip := c.RealIP()
	if err := l.Allow(email, ip); err != nil {
		return User{}, err
	}
	u, err := s.SignIn(c.Request().Context(), email, password)
	if err == errInvalidCredentials {
		l.Fail(email, ip)
	}
	if err != nil {
		return User{}, err
	}
	l.Reset(email, ip)
	return u, nil
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

// safeNext keeps a post-sign-in redirect on this site: a local path, not
// "//evil.example" or an absolute URL.
func safeNext(next string) string {
	if strings.HasPrefix(next, "/") && !strings.HasPrefix(next, "//") && !strings.HasPrefix(next, "/\\") {
		return next
	}
	return "/"
}

func handleSignUpPage(r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		if web.CurrentUser(c) != nil {
			return web.Redirect(c, "/")
		}
		return r.Render(c, http.StatusOK, web.View{Page: "auth/signup", Title: "Sign up", Data: authPage{Next: c.QueryParam("next")}})
	}
}

func handleSignUp(s *Store, sessions *web.Sessions, r *web.Renderer) echo.HandlerFunc {
	return func(c echo.Context) error {
		form := web.FormValues(c, "email", "password")
		next := c.FormValue("next")
		u, err := s.SignUp(c.Request().Context(), form.Value("email"), form.Value("password"))
		if form.Invalid(err) {
			form.Values["password"] = ""
			return r.Render(c, http.StatusUnprocessableEntity, web.View{Page: "auth/signup", Fragment: "signup-form", Title: "Sign up", Data: authPage{Form: form, Next: next}})
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

func handleSignIn(s *Store, sessions *web.Sessions, r *web.Renderer, l *Limiter) echo.HandlerFunc {
	return func(c echo.Context) error {
		form := web.FormValues(c, "email", "password")
		next := c.FormValue("next")
		u, err := signIn(c, s, l, form.Value("email"), form.Value("password"))
		if form.Invalid(err) {
			form.Values["password"] = ""
			return r.Render(c, http.StatusUnprocessableEntity, web.View{Page: "auth/signin", Fragment: "signin-form", Title: "Sign in", Data: authPage{Form: form, Next: next}})
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
