// snap2p for Android: the uniffi-generated Kotlin (same API as the JVM artifact in ../)
// plus libsnap2p_uniffi.so for each ABI under src/main/jniLibs/<abi>/, produced by
// `cargo ndk` (see ../README.md, "Android"). Not built on the Linux CI machines.
plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.21"
}

// ci/version.sh keeps this equal to the workspace version.
group = "io.snap2p"
version = "0.1.0"

android {
    namespace = "io.snap2p"
    compileSdk = 35
    ndkVersion = "27.2.12479018"

    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }

    sourceSets["main"].apply {
        // The generated bindings (uniffi-bindgen --language kotlin) and the shared Flow
        // helpers of the JVM artifact.
        kotlin.srcDirs("build/generated/uniffi", "../src/main/kotlin")
        jniLibs.srcDirs("src/main/jniLibs")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // JNA as an AAR: it carries libjnidispatch.so for each Android ABI.
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
}
