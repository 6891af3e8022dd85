// Android library module of the snap2p Kotlin bindings. Built with the Android Gradle
// Plugin and the NDK (not available on the Linux CI machines; see ../README.md).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "snap2p-android"
